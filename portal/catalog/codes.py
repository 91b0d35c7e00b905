"""Wire codes of the catalog API (bodies are `{"messages": [code]}` under /api/v1/rs-...)."""
ENTITY_NOT_FOUND = "ENTITY_NOT_FOUND"
FILE_NOT_FOUND = "FILE_NOT_FOUND"
# A NEARLINE file is never read directly: order it (the order restores it into the cache).
NEARLINE_FILE_MUST_BE_ORDERED = "NEARLINE_FILE_MUST_BE_ORDERED"
FILE_UNREADABLE = "FILE_UNREADABLE"
RANGE_NOT_SATISFIABLE = "RANGE_NOT_SATISFIABLE"
