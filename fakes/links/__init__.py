"""The lab's link proxies: TCP proxies on its network links, in Toxiproxy's model.

`models` (proxies and toxics as data, their arithmetic), `engine` (the asyncio forwarding,
one loop thread for every link), `app` (Toxiproxy's HTTP API), `__main__` (the service).
"""
