"""The layer every lab service imports: clock, PKI, control API, tokens, service runtime."""
