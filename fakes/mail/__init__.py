"""The lab's mail sink: an SMTP server that keeps every message it is given (RPO and health
alerts) and an HTTPS API to read them back. Delivers nowhere."""
