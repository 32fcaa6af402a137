"""Serving the generator with TF Serving: the SavedModel export (``export_lib``), its command
(``export_main``, ``scrabblegan-export``) and a REST/gRPC client (``client``, ``scrabblegan-client``)."""
