#!/usr/bin/python3
"""Trains tests/data/spiece/t5_style_unigram.model: a small SentencePiece Unigram model with T5's special ids.

No real T5 spiece.model can be downloaded here, so benchmarks and tests use this stand-in. It has T5's layout
(pad=0, eos=1, unk=2, no bos, nmt_nfkc normalisation, "▁" word prefix) and ~1000 pieces learned from caption-like
English that this script generates deterministically (the shapes demo's sentence frames plus COCO-like scenes).

Writes tests/data/spiece/t5_style_unigram.model and its embedded copy src/Model/Checkpoints/Resources/.
Run with Debian's python3-sentencepiece (not a pyenv python):  /usr/bin/python3 tests/data/spiece/make_spiece.py
"""
import os
import random
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PREFIX = os.path.join(HERE, "t5_style_unigram")
# The same bytes are embedded in Scst.Model (HubLayoutFolder copies them to stand-in hub folders); the Docker build
# context holds src/ but not tests/, so the resource keeps its own copy (git stores the identical blob once).
RESOURCE = os.path.join(HERE, "..", "..", "..", "src", "Model", "Checkpoints", "Resources", "t5_style_unigram.model")
VOCAB_SIZE = 1000

# The shapes demo (src/Model/Data/Shapes/ShapesCaptioner.cs): frames, kinds, colours, sizes, positions, relations.
SHAPE_FRAMES = ["{0}", "a picture of {0}", "an image of {0}", "there is {0}", "{0} on a black background",
                "a photo of {0}", "{0} on a dark background", "there are {0}"]
SHAPE_KINDS = ["circle", "disk", "ball", "square", "box", "block", "triangle"]
COLOURS = ["red", "green", "blue", "yellow", "white", "purple", "orange", "black", "brown", "pink", "gray", "grey"]
SIZES = ["small", "little", "tiny", "large", "big", "huge"]
POSITIONS = ["on the left", "on the right", "at the top", "at the bottom", "in the middle", "in the center",
             "in the top left corner", "in the bottom right corner", "near the edge"]
RELATIONS = ["to the left of", "to the right of", "above", "below", "next to", "beside", "under", "near"]

# COCO-like scenes.
PEOPLE = ["a man", "a woman", "a young boy", "a little girl", "a group of people", "two men", "a person",
          "a skier", "a surfer", "a chef", "a child", "an older woman", "a baseball player", "a tennis player",
          "a skateboarder", "a crowd of people", "a couple", "three kids"]
ANIMALS = ["a dog", "a cat", "a horse", "two giraffes", "an elephant", "a herd of zebras", "a brown bear",
           "a flock of birds", "a sheep", "a cow", "a puppy", "a kitten", "a pigeon", "a large bird"]
THINGS = ["a pizza", "a sandwich", "a plate of food", "a bowl of fruit", "a cake", "a laptop", "a cell phone",
          "a red bus", "a train", "a truck", "a motorcycle", "a bicycle", "a kite", "an umbrella", "a clock tower",
          "a fire hydrant", "a stop sign", "a bench", "a vase of flowers", "a teddy bear", "a surfboard",
          "a pair of scissors", "a toilet", "a refrigerator", "a television", "a couch", "a wooden table",
          "an airplane", "a boat", "a traffic light", "a parking meter", "a suitcase", "a frisbee", "a banana",
          "some broccoli", "a hot dog", "a donut", "a cup of coffee", "a glass of wine"]
VERBS = ["standing", "sitting", "walking", "running", "riding", "holding", "eating", "playing with", "looking at",
         "lying", "flying", "parked", "jumping", "waiting", "carrying", "watching", "throwing", "catching"]
PLACES = ["on a beach", "in a kitchen", "on a city street", "in a field", "next to a building", "in the snow",
          "on the grass", "in a living room", "at a table", "on a sidewalk", "in the water", "near a lake",
          "in a park", "on a train track", "in front of a house", "under a tree", "on a wooden floor",
          "at the airport", "in a parking lot", "on top of a hill", "in a busy market", "inside a restaurant"]
ADJ = ["large", "small", "old", "new", "colorful", "empty", "crowded", "white", "dark", "bright", "tall",
       "wooden", "metal", "plastic", "green", "yellow", "sunny", "cloudy", "wet", "dirty", "clean"]
OPENERS = ["", "", "", "a close up of ", "a view of ", "an image of ", "a photo of ", "there is ",
           "a black and white photo of "]
NUMBERS = ["two", "three", "four", "five", "several", "many", "some"]


# More nouns, verbs and adjectives so that ~1000 pieces can be learned (shape and scene words alone give ~500).
MORE_NOUNS = """apple orange carrot tomato lemon sandwich burger salad soup noodles rice bread cheese cookie
muffin pancake waffle omelet steak chicken fish shrimp pasta taco burrito sushi pie icecream yogurt cereal
mountain river ocean forest desert island valley canyon waterfall meadow garden backyard village town city
highway bridge tunnel harbor station stadium museum library church castle tower skyscraper warehouse barn
kitchen bathroom bedroom hallway balcony porch garage basement office classroom hospital airport market
window door curtain mirror lamp candle pillow blanket carpet shelf drawer cabinet closet staircase fence
guitar piano violin drum microphone camera computer keyboard monitor printer tablet remote controller
helmet jacket sweater scarf glove boot sneaker hat backpack handbag wallet necklace bracelet sunglasses
tractor scooter wagon carriage canoe kayak sailboat yacht helicopter rocket balloon skateboard snowboard
giraffe zebra lion tiger monkey rabbit squirrel deer fox wolf turtle duck goose swan parrot owl eagle
butterfly bee spider lizard snake frog dolphin whale shark penguin camel donkey goat pig chicken rooster
flower tree bush leaf grass rock stone sand wave cloud rainbow sunset sunrise shadow reflection puddle
umbrella bottle jar basket bucket ladder hammer shovel rope chain wheel tire engine bumper headlight
notebook pencil envelope newspaper magazine calendar poster painting sculpture statue fountain lighthouse
volcano glacier cliff cave pond stream orchard vineyard greenhouse playground carousel tent campfire
kettle toaster blender microwave oven stove sink faucet dishwasher spoon fork knife chopsticks napkin
saxophone trumpet accordion harmonica typewriter telescope compass binoculars lantern hammock wheelbarrow
pineapple watermelon cucumber pumpkin mushroom avocado coconut blueberry raspberry cherry peach grape
""".split()
MORE_VERBS = """smiling laughing talking reading writing cooking baking cutting slicing pouring drinking
sleeping resting climbing swimming diving surfing skiing skating dancing singing painting drawing
pushing pulling lifting grabbing kicking hitting swinging chasing feeding petting brushing washing
cleaning fixing building driving crossing waving pointing posing hugging kissing shaking serving
hiking fishing camping shopping gardening knitting juggling skipping wrestling boxing rowing sailing
""".split()
MORE_ADJ = """beautiful ugly happy sad angry tired busy quiet noisy modern ancient vintage rusty shiny
fluffy furry spotted striped curly straight narrow wide heavy light soft hard smooth rough frozen
snowy rainy foggy windy stormy sandy rocky grassy muddy dusty sparkling glowing broken empty full
delicious fresh ripe sliced fried grilled roasted baked chocolate vanilla strawberry wooden concrete
""".split()


def extra_caption(rng):
    a, n, v = rng.choice(MORE_ADJ), rng.choice(MORE_NOUNS), rng.choice(MORE_VERBS)
    m = rng.choice(MORE_NOUNS)
    form = rng.random()
    if form < 0.3:
        return f"a {a} {n} next to a {m}"
    if form < 0.6:
        return f"{rng.choice(PEOPLE)} {v} near a {a} {m}"
    if form < 0.8:
        return f"a {n} and a {m} in a {rng.choice(MORE_ADJ)} {rng.choice(MORE_NOUNS)}"
    return f"{rng.choice(ANIMALS)} {v} {rng.choice(PLACES)} with a {a} {n}"


def shape_phrase(rng):
    words = []
    if rng.random() < 0.4:
        words.append(rng.choice(SIZES))
    words.append(rng.choice(COLOURS))
    words.append(rng.choice(SHAPE_KINDS))
    phrase = ("an " if words[0][0] in "aeiou" else "a ") + " ".join(words)
    if rng.random() < 0.35:
        phrase += " " + rng.choice(POSITIONS)
    return phrase


def shape_caption(rng):
    n = rng.choice([1, 2, 3])
    if n == 1:
        body = shape_phrase(rng)
    elif n == 2 and rng.random() < 0.4:
        body = f"{shape_phrase(rng)} {rng.choice(RELATIONS)} {shape_phrase(rng)}"
    elif rng.random() < 0.12:
        body = f"{'two' if n == 2 else 'three'} {rng.choice(['shapes', 'objects'])}"
    else:
        parts = [shape_phrase(rng) for _ in range(n)]
        body = " and ".join(parts) if n == 2 else f"{parts[0]}, {parts[1]} and {parts[2]}"
    frame = rng.choice(SHAPE_FRAMES)
    return frame.format(body)


def scene_caption(rng):
    subject = rng.choice(PEOPLE + ANIMALS)
    verb = rng.choice(VERBS)
    obj = rng.choice(THINGS)
    if rng.random() < 0.3:
        obj = obj.replace("a ", f"a {rng.choice(ADJ)} ", 1) if obj.startswith("a ") else obj
    place = rng.choice(PLACES)
    form = rng.random()
    if form < 0.35:
        text = f"{subject} {verb} {obj} {place}"
    elif form < 0.6:
        text = f"{subject} is {verb} {place}"
    elif form < 0.8:
        text = f"{rng.choice(NUMBERS)} {rng.choice(['people', 'dogs', 'birds', 'cars', 'plates', 'boats'])} {verb} {place}"
    else:
        text = f"{obj} {rng.choice(['sitting', 'parked', 'placed', 'lying'])} {place} with {rng.choice(THINGS)}"
    text = rng.choice(OPENERS) + text
    if rng.random() < 0.15:
        text = text[0].upper() + text[1:] + "."
    return text


def main():
    rng = random.Random(0)
    lines = []
    for _ in range(60000):
        r = rng.random()
        lines.append(shape_caption(rng) if r < 0.25 else scene_caption(rng) if r < 0.6 else extra_caption(rng))
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # Relative names: the trainer records its input and prefix in the model, which should not hold a temp path.
        os.chdir(tmp)
        try:
            with open("captions.txt", "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            spm.SentencePieceTrainer.train(
                input="captions.txt",
                model_prefix="m",
                model_type="unigram",
                vocab_size=VOCAB_SIZE,
                pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
                normalization_rule_name="nmt_nfkc",
                character_coverage=1.0,
                num_threads=1,
                shuffle_input_sentence=False,
                input_sentence_size=0,
                minloglevel=2,
            )
            with open("m.model", "rb") as src:
                model = src.read()
            for path in (OUT_PREFIX + ".model", RESOURCE):
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                with open(path, "wb") as dst:
                    dst.write(model)
        finally:
            os.chdir(cwd)
    sp = spm.SentencePieceProcessor(model_file=OUT_PREFIX + ".model")
    print(f"wrote {OUT_PREFIX}.model: {sp.get_piece_size()} pieces, pad={sp.pad_id()} eos={sp.eos_id()} "
          f"unk={sp.unk_id()} bos={sp.bos_id()}")
    print("example:", sp.encode("a red circle to the left of a blue box", out_type=str))


if __name__ == "__main__":
    main()
