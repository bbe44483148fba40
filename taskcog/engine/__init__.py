"""taskcog's task engine: schedules, supervised loops, job families and a worker pool.

Pure asyncio. Nothing in this package imports Red or needs a Discord connection, so every
piece can be driven and tested on a plain (or virtual-time) event loop.
"""
