"""Stream helpers for the engine components' Amaranth testbenches (one set for every test)."""


async def stream_put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` until it is taken."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_idle(ctx, cycles):
    """Wait ``cycles`` clock cycles."""
    for _ in range(cycles):
        await ctx.tick()
