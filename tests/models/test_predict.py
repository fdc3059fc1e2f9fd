"""The batched top-1 prediction loop shared by clean accuracy and training."""
import torch

from foolkit.models.predict import predict_labels


def test_predict_labels_batches_and_restores_modes():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(12), torch.nn.Linear(12, 5))
    model.train()
    model[1].eval()  # a mixed state must come back as it was, submodule by submodule
    x = torch.rand(7, 3, 2, 2)
    seen = []
    pred = predict_labels(model, x, batch_size=3, on_batch=seen.append)
    assert seen == [3, 3, 1]
    assert pred.dtype == torch.long and pred.shape == (7,) and pred.device.type == "cpu"
    assert model.training and not model[1].training and model[2].training
    with torch.no_grad():
        assert torch.equal(pred, model.eval()(x).argmax(1))


def test_predict_labels_of_no_images_and_a_parameterless_model():
    assert predict_labels(torch.nn.Flatten(), torch.zeros(0, 3, 2, 2)).shape == (0,)
    assert predict_labels(torch.nn.Flatten(), torch.eye(3)[:, :, None, None].expand(3, 3, 1, 1)).tolist() == [0, 1, 2]
