"""Gold questions -> answers through the service's chain -> per-question records -> metrics -> report."""
