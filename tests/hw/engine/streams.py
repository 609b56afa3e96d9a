"""Stream helpers for the engine components' Amaranth testbenches (one set for every test)."""


async def stream_put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` until it is taken."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)

