"""Operations: run, supervise, reconcile and recover the flows; the demo and chaos figures."""
