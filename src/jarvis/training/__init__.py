"""Training the student: base model, dataset, LoRA trainer, gate, registry, worker."""
