"""`backdrop serve`: the HTTP service and its page. The event loop (app.py) only checks
requests and answers; the pixels are worked in spawned worker processes (pool.py,
render.py) that each keep their models loaded between requests."""
