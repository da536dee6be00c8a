"""manager/store"""
