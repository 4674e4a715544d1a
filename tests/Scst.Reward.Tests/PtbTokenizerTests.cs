namespace Scst.Reward.Tests;

public class PtbTokenizerTests
{
    [Theory]
    [InlineData("A man's dog.", "a man 's dog")]
    [InlineData("They don't know.", "they do n't know")]
    [InlineData("It can't be, won't be!", "it ca n't be wo n't be")]
    [InlineData("We cannot see", "we can not see")]
    [InlineData("She'll go; they're here and I'm there, we've been, he'd gone", "she 'll go they 're here and i 'm there we 've been he 'd gone")]
    [InlineData("The dogs' bowls", "the dogs bowls")]
    [InlineData("A dog (brown) and a cat [white] {x}", "a dog brown and a cat white x")]
    [InlineData("A sign saying \"STOP\" here", "a sign saying stop here")]
    [InlineData("A ‘quoted’ word and “double” quotes", "a quoted word and double quotes")]
    [InlineData("Wait... what? Yes! - ok -- fine: done", "wait what yes ok fine done")]
    [InlineData("A red T-shirt and a black-and-white dog.", "a red t-shirt and a black-and-white dog")]
    [InlineData("Mr. Smith and Dr. Jones in the U.S. today.", "mr. smith and dr. jones in the u.s. today")]
    [InlineData("3,000 people at 3:30 paid $5 for 2.5 hours, 50% off", "3,000 people at 3:30 paid $ 5 for 2.5 hours 50 % off")]
    [InlineData("Jersey #7 and AT&T", "jersey # 7 and at&t")]
    [InlineData("Line one\nline two", "line one line two")]
    [InlineData("", "")]
    [InlineData("  . , ; ", "")]
    public void TokenizesLikePtbThenDropsPunctuation(string input, string expected) =>
        Assert.Equal(expected, PtbTokenizer.Tokenize(input));

    [Fact]
    public void BracketsBecomePtbTokensBeforeTheyAreDropped()
    {
        // The PTB escapes themselves are in the drop list, so typing them yields nothing either.
        Assert.Equal("a b", PtbTokenizer.Tokenize("a -LRB- b -RRB-"));
        Assert.Contains("-LRB-", PtbTokenizer.DroppedTokens);
    }
}
