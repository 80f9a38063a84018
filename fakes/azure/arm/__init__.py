"""Fake Azure Resource Manager: the HTTPS front every management-plane call goes through.

`front.ArmFront` authenticates (Entra bearer tokens for https://management.azure.com/),
routes by operationId from OpenAPI-derived tables, checks api-versions, applies fault rules
and writes ARM's error JSON; `lro` and `paging` shape long-running and list answers.
Resource providers are mounted on it (`front.ProviderMount`): Site Recovery today
(`fakes.azure.siterecovery`), Compute and Network later.

Limits: no RBAC (any valid token of the tenant may call any operation), no resource groups or
subscriptions as resources of their own (the topology's one subscription, group and vault
exist), no throttling headers, no ETags.
"""
