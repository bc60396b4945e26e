"""A NumPy softmax-regression oracle (analytic gradients) for framework-free kernel tests."""

from __future__ import annotations

import numpy as np

from aisec_lab.attacks.oracle import loss_from_logits


class LinearOracle:
    """``z = W x + b`` on flattened input; implements :class:`aisec_lab.attacks.oracle.Oracle`."""

    has_gradients = True

    def __init__(self, W: np.ndarray, b: np.ndarray, input_shape, clip=(0.0, 1.0)):
        self.W = np.asarray(W, dtype=np.float64)  # (K, d)
        self.b = np.asarray(b, dtype=np.float64)
        self.nb_classes = self.W.shape[0]
        self.input_shape = tuple(input_shape)
        self.clip_min = np.full(self.input_shape, clip[0], dtype=np.float32)
        self.clip_max = np.full(self.input_shape, clip[1], dtype=np.float32)
        self.queries = 0
        self.gradient_calls = 0

    @classmethod
    def fit_digits(cls, ds, C: float = 1.0) -> "LinearOracle":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C, max_iter=500).fit(np.asarray(ds.x).reshape(ds.n, -1), ds.y)
        return cls(clf.coef_, clf.intercept_, ds.input_shape)

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.queries += len(x)
        return (np.asarray(x, np.float64).reshape(len(x), -1) @ self.W.T + self.b).astype(np.float32)

    def value_and_grad(self, x, y, *, loss="ce", y_target=None):
        self.gradient_calls += 1
        z = self.logits(x).astype(np.float64)
        n, k = z.shape
        rows = np.arange(n)
        eye = np.eye(k)
        if loss == "ce":
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            dz = p - eye[y] if y_target is None else eye[y_target] - p
        elif loss == "margin":
            if y_target is None:
                o = np.where(eye[y] > 0, -np.inf, z).argmax(1)
                dz = eye[o] - eye[y]
            else:
                o = np.where(eye[y_target] > 0, -np.inf, z).argmax(1)
                dz = eye[y_target] - eye[o]
        elif loss == "dlr":
            order = np.argsort(-z, axis=1)
            zs = z[rows[:, None], order]
            if y_target is None:
                o = np.where(eye[y] > 0, -np.inf, z).argmax(1)
                N = z[rows, y] - z[rows, o]
                D = zs[:, 0] - zs[:, 2] + 1e-12
                dN = eye[y] - eye[o]
                dD = eye[order[:, 0]] - eye[order[:, 2]]
            else:
                N = z[rows, y] - z[rows, y_target]
                D = zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12
                dN = eye[y] - eye[y_target]
                dD = eye[order[:, 0]] - 0.5 * (eye[order[:, 2]] + eye[order[:, 3]])
            dz = -(dN * D[:, None] - N[:, None] * dD) / (D ** 2)[:, None]
        else:
            raise ValueError(loss)
        grad = (dz @ self.W).reshape((n,) + self.input_shape).astype(np.float32)
        value = loss_from_logits(z, y, loss=loss, y_target=y_target)
        return value, grad, z.astype(np.float32)
