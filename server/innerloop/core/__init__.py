"""Pure logic: no asyncio, sockets, websockets, kubernetes, pygls or debugpy (a test enforces it).

Everything here takes values and bytes in and gives values, bytes and effects out; time is a
parameter and deadlines come back as data.
"""
