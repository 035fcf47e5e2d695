"""The parts of the streaming job's stateful step (``transforms.apply_per_group.ApplyPerGroupFn``), by concern.

``routed`` (what the step receives), ``key_context`` (a key's bookkeeping, and its state and timer handles for
one callback), ``flush`` (a key's flush and what follows an engine call), ``bundle`` (the step's settings and
a bundle's end), ``hydration`` (batched reads of key states), ``local_commits`` (commits overlapped with the
next bundles, local runs), ``watermark`` (how far the step's watermark is known to be) and ``drain`` (stopping
a local run). No Beam pipeline is built here; ``transforms.apply_per_group`` holds the DoFn and the PTransform.
"""
