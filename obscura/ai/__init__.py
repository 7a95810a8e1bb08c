"""obscura.ai"""
