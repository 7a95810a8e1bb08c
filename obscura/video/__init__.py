"""obscura.video"""
