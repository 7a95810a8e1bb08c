"""obscura.sim"""
