"""msgspec Structs for PromptLayer API bodies, shared by the client and the server."""
