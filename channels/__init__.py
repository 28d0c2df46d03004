"""Channel adapters: one module per channel behind one interface (``channels.base``)."""
