"""The HTTP layer: FastAPI app, routers, schemas, authentication, error mapping."""
