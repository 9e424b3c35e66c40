merge nothing {
    weight = weight;
}
