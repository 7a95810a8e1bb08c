"""obscura.burst"""
