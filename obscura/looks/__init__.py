"""obscura.looks"""
