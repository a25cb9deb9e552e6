"""Documents -> text with offsets -> chunks with stable ids -> Chroma (+ keyword index)."""
