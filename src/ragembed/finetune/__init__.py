"""Fine-tuning: adapt the bundled MiniLM (or any model) to a BEIR domain.

`train_matryoshka` trains a dense model whose leading dimensions carry most of its meaning
(sentence-transformers MatryoshkaLoss); `train_colbert` trains a PyLate ColBERT model;
`train_reranker` trains a cross-encoder. Each saves a model folder that ragembed loads by path
(the embedders, or CrossEncoderReranker).
"""

from ragembed.finetune.data import TrainingPairs, training_pairs

__all__ = ["TrainingPairs", "training_pairs"]
