"""The pure core: message model, decoding and the per-group rules.

Nothing in this package imports Beam, Spanner, Redis or Pub/Sub, reads a clock
or draws a random number. Streaming and backfill both call it, so it alone
decides behaviour.
"""
