"""What is said: campaign files, schedules, rendering, countdown and text rules.

This package imports nothing else of tminus and does no I/O beyond reading campaign
files.
"""
