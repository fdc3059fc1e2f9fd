"""Clean accuracy (Table 11.4): the confusion report and `foolkit eval`'s progress bar."""
import torch

from foolkit import cli
from foolkit.evaluation.clean import clean_accuracy


class Constant(torch.nn.Module):
    """Predicts class 0 for every image."""

    def forward(self, x):
        return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 3).float()


def test_report_counts_and_a_class_without_images():
    x = torch.rand(5, 3, 4, 4)
    y = torch.tensor([0, 0, 1, 0, 1])
    report = clean_accuracy(Constant(), x, y, ("a", "b", "c"), batch_size=2, progress=True)
    assert report.n == 5 and report.accuracy == 3 / 5
    assert report.confusion.tolist() == [[3, 0, 0], [2, 0, 0], [0, 0, 0]]
    lines = report.format().splitlines()
    assert "a  100.00%  (n=3)" in lines and "b    0.00%  (n=2)" in lines
    # no images of class c: no accuracy, not "0.00%"
    c_line = next(line for line in lines if line.startswith("c "))
    assert "%" not in c_line and "n=0" in c_line


def test_eval_shows_progress_on_stderr_unless_quiet(capsys):
    assert cli.main(["eval", "cifar10/resnet20", "--n", "20"]) == 0
    captured = capsys.readouterr()
    # tqdm draws 0/20 at once; later frames depend on timing (mininterval), so only that is sure
    assert "accuracy" in captured.out and "cifar10/resnet20:" in captured.err and "/20 [" in captured.err
    assert cli.main(["eval", "cifar10/resnet20", "--n", "20", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "accuracy" in captured.out and captured.err == ""


def test_clean_accuracy_restores_the_model_mode():
    """clean_accuracy classifies in eval mode (dropout off) and gives back train mode after."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.9), torch.nn.Linear(3 * 4 * 4, 3))
    model.train()
    x, y = torch.rand(6, 3, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    report = clean_accuracy(model, x, y, ("a", "b", "c"), batch_size=4)
    assert model.training and all(m.training for m in model.modules())
    # eval mode inside: dropout off, so the predictions are the deterministic eval-mode ones
    with torch.no_grad():
        expected = model.eval()(x).argmax(1)
    want = torch.zeros(3, 3, dtype=torch.long)
    want.index_put_((y, expected), torch.ones(6, dtype=torch.long), accumulate=True)
    assert torch.equal(report.confusion, want)
