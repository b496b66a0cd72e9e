"""devhub: hub-side logic of the multi-user TensorFlow development server."""
