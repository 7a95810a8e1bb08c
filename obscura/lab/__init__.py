"""obscura.lab"""
