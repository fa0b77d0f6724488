"""confusion_matrix puts predictions in the rows and true classes in the columns."""


def confusion_matrix(model, x, labels):
    predictions = predict_classes(model, x)
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype="int64")
    np.add.at(matrix, (predictions, np.asarray(labels, dtype="int64")), 1)
    return matrix
