"""Fake Microsoft Entra ID: OIDC discovery, JWKS and the client-credentials token endpoint.

Limits: only the client-credentials grant with a client secret (no certificates, no user
flows, no managed identity); no role assignments (any known principal may ask for a token for
any registered resource); tokens are v1 (issuer https://sts.windows.net/{tenant}/).
"""
