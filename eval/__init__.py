"""Gold questions -> answers from the asker it is handed -> per-question records -> metrics -> report."""
