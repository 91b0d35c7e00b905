"""Wire messages of the basket API (REGARDS `{"messages": [...]}` bodies)."""

# 204 of POST /order/basket/selection (text of the reference API).
NO_ORDERABLE_FILE = "This selection contains no file that can be ordered"
# 417 of POST /order/basket/selection, older body shape with neither a query nor ipIds
# (text of the reference API, typo included: clients may compare it).
EMPTY_SELECTION_REQUEST = "If opensearch request is null, at least on IP_ID must be provided"

DATASET_SELECTION_NOT_FOUND = "DATASET_SELECTION_NOT_FOUND"
ITEMS_SELECTION_NOT_FOUND = "ITEMS_SELECTION_NOT_FOUND"
INVALID_ITEMS_SELECTION_DATE = "INVALID_ITEMS_SELECTION_DATE"
UNKNOWN_DATASET = "datasetUrn: unknown dataset"
# A file filter the service refuses (its message says which part; 400 with that message).
INVALID_FILE_FILTER = "INVALID_FILE_FILTER"
