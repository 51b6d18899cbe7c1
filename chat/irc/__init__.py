"""The long-connection side: IRC over persistent TCP (parser, session, asyncio adapter)."""
