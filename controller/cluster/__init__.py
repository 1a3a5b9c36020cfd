"""The Kubernetes edge: the sources (which objects, how they are read), the kopf hooks, the listings, the API
client and the health of the watch streams. The only part of the package that imports kopf or kubernetes."""
