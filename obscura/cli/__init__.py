"""obscura.cli"""
