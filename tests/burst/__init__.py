"""Tests of obscura.burst."""
