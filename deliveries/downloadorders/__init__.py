"""Content Hub download orders (`/api/downloadorders`, SPEC section 3).

A download order names targets (data objects), what to deliver of each (renditions = data
file types, conversions, presets) and how to name it; its package is a `Delivery` of the
project (catalog id `downloadorder-<id>`) built by the delivery preparation, and its zip is
the order's `download_location`. See docs/architecture.md.
"""
