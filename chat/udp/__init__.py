"""The udp lane: connectionless push.  :mod:`.datagrams` (the formats, pure),
:mod:`.registry` (registrations, sinks, limits, pure), :mod:`.server` (the socket adapter).
"""
