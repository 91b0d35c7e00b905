"""File downloads of orders: available files, single files, resumable zips and metalinks."""
