namespace Scst.Host.Reporting;

/// <summary>Exponential moving average for plots, debiased as TensorBoard's smoothing slider is.</summary>
public static class Ema
{
    /// <summary>
    /// s_t = Σ_{i≤t} β^(t−i) x_i / Σ_{i≤t} β^(t−i): each point weighs β times its successor, and dividing by the weights
    /// that exist so far keeps the first points from being pulled toward 0 (so s_1 = x_1). β = 0 returns the input.
    /// </summary>
    public static double[] Smooth(IReadOnlyList<double> values, double beta)
    {
        if (!(beta >= 0 && beta < 1)) throw new ArgumentOutOfRangeException(nameof(beta), beta, "the smoothing factor must be in [0, 1)");
        var smoothed = new double[values.Count];
        double sum = 0, weight = 0;
        for (var t = 0; t < values.Count; t++)
        {
            sum = beta * sum + values[t];
            weight = beta * weight + 1;
            smoothed[t] = sum / weight;
        }
        return smoothed;
    }
}
