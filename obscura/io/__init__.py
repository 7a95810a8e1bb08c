"""obscura.io"""
