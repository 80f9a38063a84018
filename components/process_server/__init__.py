"""The process server: receives differentials from mobility agents, keeps them durably in its
cache, compresses, encrypts and uploads them to the cache storage account, and reports its
health to the configuration server."""
