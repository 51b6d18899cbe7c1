"""The terminal client (`chat connect`) and the transport layer shared with `chat compare`."""
