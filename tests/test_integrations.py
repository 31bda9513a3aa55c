"""The Lightning and Hugging Face callbacks record a run, on tiny models built here (no download).

Skipped with the reason when the extra is not installed (``pip install -r
requirements-extras.txt``; CI installs it)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnviz.store.runs import RunStore


def test_lightning_callback_records_a_run(runs_dir):
    L = pytest.importorskip("lightning", reason="the lightning extra is not installed "
                            "(pip install -r requirements-extras.txt)")
    from nnviz.integrations.lightning import NnvizCallback

    class Classifier(L.LightningModule):
        """Linear(6, 16) -> ReLU -> Linear(16, 3), SGD."""

        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
            self.unused = nn.Linear(2, 2)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    cb = NnvizCallback(probe=x[:8], name="lightning tiny", runs_dir=runs_dir)
    trainer = L.Trainer(max_epochs=2, callbacks=[cb], accelerator="cpu", devices=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(runs_dir.parent))
    model = Classifier()
    trainer.fit(model, loader)
    run = RunStore(runs_dir).load(cb.run_id)
    assert run.status == "completed" and run.n_snapshots == 3
    assert run.record.source.extra["integration"] == "lightning"
    assert [e.step for e in run.entries] == [0, 4, 8]
    assert "train_loss" in run.record.history[-1].to_json()
    last = run.snapshot(2).record
    assert last.params["net.0.weight"].grad.steps == 4
    assert last.params["unused.weight"].extra["grad_status"] == "no gradient"
    assert {"net.0", "net.1", "net.2"} <= set(last.activations)
    w = model.net[2].weight.detach().double()
    assert last.params["net.2.weight"].std == pytest.approx(float(w.std()), rel=1e-9)
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters())


def test_huggingface_callback_records_a_run(runs_dir, tmp_path):
    transformers = pytest.importorskip(
        "transformers", reason="the huggingface extra is not installed "
        "(pip install -r requirements-extras.txt)")
    from nnviz.integrations.huggingface import NnvizCallback

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=16, num_labels=2)
    model = transformers.BertForSequenceClassification(config)  # built offline, no download
    ids = torch.randint(0, 50, (32, 8))
    labels = torch.randint(0, 2, (32,))

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return len(ids)

        def __getitem__(self, i):
            return {"input_ids": ids[i], "labels": labels[i]}

    cb = NnvizCallback(probe={"input_ids": ids[:4]}, name="bert tiny", runs_dir=runs_dir)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=8,
        learning_rate=1e-3, logging_steps=2, save_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True, max_grad_norm=1.0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Pairs(),
                                   callbacks=[cb])
    trainer.train()
    run = RunStore(runs_dir).load(cb.run_id)
    assert run.status == "completed" and run.n_snapshots == 3
    assert run.record.source.extra["integration"] == "huggingface"
    assert [e.epoch for e in run.entries] == [0.0, 1.0, 2.0]
    assert "loss" in run.record.history[-1].to_json()
    last = run.snapshot(2).record
    q = "bert.encoder.layer.0.attention.self.query.weight"
    assert last.params[q].grad.steps == 4
    assert "bert.embeddings.word_embeddings" in last.activations
    w = dict(model.named_parameters())[q].detach().double()
    assert last.params[q].std == pytest.approx(float(w.std()), rel=1e-9)
