namespace Scst.Reward;

public enum BaselineKind
{
    /// <summary>Mean reward of the K candidates of the same image (the seed's choice; biased when the K are beams).</summary>
    MeanOfK,
    /// <summary>Luo 2020, "new self-critical": baseline of candidate i = mean of the other K − 1 rewards.</summary>
    LeaveOneOut,
    /// <summary>Rennie et al. 2017: baseline = reward of the image's greedy caption.</summary>
    Greedy,
}

/// <summary>
/// Self-critical advantages (reward − baseline) as pure functions over image-major rewards:
/// image b's K candidates are <c>rewards[b*K .. b*K+K)</c>.
/// </summary>
public static class SelfCritical
{
    public static void MeanOfK(ReadOnlySpan<double> rewards, int k, Span<double> advantages)
    {
        Check(rewards, k, advantages);
        for (int b = 0; b < rewards.Length / k; b++)
        {
            var r = rewards.Slice(b * k, k);
            double mean = Sum(r) / k;
            for (int i = 0; i < k; i++) advantages[b * k + i] = r[i] - mean;
        }
    }

    public static void LeaveOneOut(ReadOnlySpan<double> rewards, int k, Span<double> advantages)
    {
        Check(rewards, k, advantages);
        if (k < 2) throw new ArgumentException($"leave-one-out needs K >= 2 candidates per image, got K = {k}", nameof(k));
        for (int b = 0; b < rewards.Length / k; b++)
        {
            var r = rewards.Slice(b * k, k);
            double sum = Sum(r);
            for (int i = 0; i < k; i++) advantages[b * k + i] = r[i] - (sum - r[i]) / (k - 1);
        }
    }

    /// <param name="greedyRewards">one reward per image: the reward of its greedy-decoded caption.</param>
    public static void Greedy(ReadOnlySpan<double> rewards, int k, ReadOnlySpan<double> greedyRewards, Span<double> advantages)
    {
        Check(rewards, k, advantages);
        if (greedyRewards.Length * k != rewards.Length)
            throw new ArgumentException($"{greedyRewards.Length} greedy rewards for {rewards.Length / k} images; need one per image", nameof(greedyRewards));
        for (int i = 0; i < rewards.Length; i++) advantages[i] = rewards[i] - greedyRewards[i / k];
    }

    public static double[] Advantages(BaselineKind kind, ReadOnlySpan<double> rewards, int k, ReadOnlySpan<double> greedyRewards = default)
    {
        var adv = new double[rewards.Length];
        switch (kind)
        {
            case BaselineKind.MeanOfK: MeanOfK(rewards, k, adv); break;
            case BaselineKind.LeaveOneOut: LeaveOneOut(rewards, k, adv); break;
            case BaselineKind.Greedy: Greedy(rewards, k, greedyRewards, adv); break;
            default: throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown baseline");
        }
        return adv;
    }

    private static double Sum(ReadOnlySpan<double> r)
    {
        double s = 0;
        foreach (var x in r) s += x;
        return s;
    }

    private static void Check(ReadOnlySpan<double> rewards, int k, Span<double> advantages)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "K (candidates per image) must be positive");
        if (rewards.Length % k != 0) throw new ArgumentException($"{rewards.Length} rewards is not a multiple of K = {k}", nameof(rewards));
        if (advantages.Length != rewards.Length) throw new ArgumentException($"advantages has length {advantages.Length}, rewards {rewards.Length}", nameof(advantages));
    }
}
