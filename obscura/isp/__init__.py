"""obscura.isp"""
