// A curated set of common emoji for the picker, in categories, each with its
// name (and a few extra words) to search by. Written here, not a package:
// about 300 emoji are what people pick, and the whole list is a few KB.
// Each category's list is "emoji name[,extra words]" entries separated by |.
const RAW = [
  ['smileys', 'Smileys', '😀',
    '😀 grinning face,happy smile|😃 grinning face with big eyes,happy|😄 grinning face with smiling eyes,happy|' +
    '😁 beaming face,grin|😆 laughing,squinting|😅 sweat smile,relief|🤣 rolling on the floor laughing,rofl|' +
    '😂 tears of joy,lol laugh|🙂 slightly smiling face|🙃 upside-down face|😉 winking face,wink|' +
    '😊 smiling face with smiling eyes,blush|😇 halo,angel innocent|🥰 smiling face with hearts,love|' +
    '😍 heart eyes,love|🤩 star-struck,wow|😘 face blowing a kiss|😋 yum,delicious|😛 tongue out|' +
    '😜 winking face with tongue|🤪 zany face,crazy|🤑 money-mouth face|🤗 hugging face,hug|' +
    '🤭 hand over mouth,oops|🤫 shushing face,quiet|🤔 thinking face,hmm|🤐 zipper-mouth face|' +
    '🤨 raised eyebrow,skeptical|😐 neutral face|😑 expressionless|😶 face without mouth|😏 smirking face,smirk|' +
    '😒 unamused face|🙄 rolling eyes|😬 grimacing face,awkward|😌 relieved face|😔 pensive face|' +
    '😪 sleepy face|😴 sleeping face,zzz|😷 face with medical mask,sick|🤒 face with thermometer,ill|' +
    '🤕 head-bandage,hurt|🤢 nauseated face|🤮 vomiting|🤧 sneezing face|🥵 hot face|🥶 cold face|' +
    '🥴 woozy face|😵 dizzy face|🤯 exploding head,mind blown|🤠 cowboy hat face|🥳 partying face,party|' +
    '😎 smiling face with sunglasses,cool|🤓 nerd face|🧐 face with monocle|😕 confused face|😟 worried face|' +
    '🙁 slightly frowning face|😮 face with open mouth,surprised|😯 hushed face|😲 astonished face,shocked|' +
    '😳 flushed face,embarrassed|🥺 pleading face,puppy eyes|😦 frowning face with open mouth|😧 anguished face|' +
    '😨 fearful face,scared|😰 anxious face with sweat|😥 sad but relieved face|😢 crying face,sad tear|' +
    '😭 loudly crying face,sob|😱 screaming in fear|😖 confounded face|😣 persevering face|😞 disappointed face|' +
    '😓 downcast face with sweat|😩 weary face|😫 tired face|🥱 yawning face|😤 face with steam,triumph|' +
    '😡 pouting face,angry|😠 angry face,mad|🤬 face with symbols on mouth,cursing|😈 smiling face with horns,devil|' +
    '💀 skull,dead|💩 pile of poo|🤡 clown face|👻 ghost|👽 alien|🤖 robot|😺 grinning cat|😹 cat with tears of joy|' +
    '🙈 see-no-evil monkey|🙉 hear-no-evil monkey|🙊 speak-no-evil monkey'],
  ['people', 'People and gestures', '👍',
    '👍 thumbs up,+1 like yes approve|👎 thumbs down,-1 dislike no|👋 waving hand,hello hi bye|🤚 raised back of hand|' +
    '✋ raised hand,stop high five|🖖 vulcan salute|👌 ok hand,okay|🤌 pinched fingers|🤏 pinching hand,small|' +
    '✌️ victory hand,peace|🤞 crossed fingers,luck|🤟 love-you gesture|🤘 sign of the horns,rock|🤙 call me hand|' +
    '👈 backhand index pointing left|👉 backhand index pointing right|👆 backhand index pointing up|' +
    '👇 backhand index pointing down|☝️ index pointing up|✊ raised fist|👊 oncoming fist,punch bump|' +
    '👏 clapping hands,applause bravo|🙌 raising hands,hooray|👐 open hands|🤲 palms up together|' +
    '🤝 handshake,deal agree|🙏 folded hands,please thanks pray|✍️ writing hand|💪 flexed biceps,strong|' +
    '🦾 mechanical arm|🧠 brain,smart|👀 eyes,look see|👁️ eye|👂 ear,listen|👃 nose|👄 mouth|' +
    '🫶 heart hands,love|🙋 person raising hand,question|🙇 person bowing,sorry|🤦 person facepalming,facepalm|' +
    '🤷 person shrugging,shrug dunno|🙆 person gesturing ok|🙅 person gesturing no|💁 person tipping hand|' +
    '🧑‍💻 technologist,coder developer|🧑‍🎨 artist|🧑‍🚀 astronaut|🧑‍🍳 cook,chef|🕺 man dancing,dance|' +
    '💃 woman dancing,dance|🏃 person running,run|🚶 person walking,walk|🧘 person in lotus position,yoga calm|' +
    '👶 baby|🧒 child|🧑 person|👴 old man|👵 old woman|👮 police officer|🥷 ninja|🦸 superhero|🧙 mage,wizard'],
  ['nature', 'Animals and nature', '🐶',
    '🐶 dog face,puppy|🐱 cat face,kitten|🐭 mouse face|🐹 hamster|🐰 rabbit face,bunny|🦊 fox|🐻 bear|' +
    '🐼 panda|🐨 koala|🐯 tiger face|🦁 lion|🐮 cow face|🐷 pig face|🐸 frog|🐵 monkey face|🐔 chicken|' +
    '🐧 penguin|🐦 bird|🐤 baby chick|🦆 duck|🦅 eagle|🦉 owl|🦇 bat|🐺 wolf|🐗 boar|🐴 horse face|' +
    '🦄 unicorn|🐝 honeybee,bee|🐛 bug|🦋 butterfly|🐌 snail,slow|🐞 lady beetle,ladybug|🐢 turtle,slow|' +
    '🐍 snake|🦖 t-rex,dinosaur|🐙 octopus|🦀 crab|🐠 tropical fish|🐬 dolphin|🐳 spouting whale|🦈 shark|' +
    '🐘 elephant|🦒 giraffe|🐿️ chipmunk,squirrel|🦔 hedgehog|🐾 paw prints|🌵 cactus|🎄 christmas tree|' +
    '🌲 evergreen tree|🌳 deciduous tree|🌴 palm tree|🌱 seedling,grow|🌿 herb|🍀 four leaf clover,luck|' +
    '🍁 maple leaf,autumn|🍂 fallen leaf|🍄 mushroom|💐 bouquet,flowers|🌷 tulip|🌹 rose|🌻 sunflower|' +
    '🌸 cherry blossom|🌼 blossom|🌞 sun with face|🌝 full moon face|🌙 crescent moon,night|⭐ star|' +
    '🌟 glowing star|✨ sparkles,shiny new|⚡ high voltage,lightning zap fast|🔥 fire,hot lit|💧 droplet,water|' +
    '🌊 water wave,ocean|🌈 rainbow|☀️ sun,sunny|⛅ sun behind cloud|☁️ cloud|🌧️ cloud with rain|' +
    '⛈️ cloud with lightning and rain,storm|❄️ snowflake,cold|☃️ snowman|🌍 globe showing europe-africa,earth world|' +
    '🌎 globe showing americas|🌏 globe showing asia-australia'],
  ['food', 'Food and drink', '🍕',
    '🍏 green apple|🍎 red apple|🍐 pear|🍊 tangerine,orange|🍋 lemon|🍌 banana|🍉 watermelon|🍇 grapes|' +
    '🍓 strawberry|🫐 blueberries|🍒 cherries|🍑 peach|🥭 mango|🍍 pineapple|🥥 coconut|🥝 kiwi fruit|' +
    '🍅 tomato|🥑 avocado|🥦 broccoli|🥕 carrot|🌽 ear of corn|🌶️ hot pepper,spicy|🥔 potato|🥐 croissant|' +
    '🍞 bread|🧀 cheese wedge|🥚 egg|🍳 cooking,fried egg|🥞 pancakes|🥓 bacon|🍔 hamburger,burger|' +
    '🍟 french fries|🍕 pizza|🌭 hot dog|🥪 sandwich|🌮 taco|🌯 burrito|🥗 green salad|🍝 spaghetti,pasta|' +
    '🍜 steaming bowl,ramen noodles|🍣 sushi|🍱 bento box|🍚 cooked rice|🍛 curry rice|🍦 soft ice cream|' +
    '🍩 doughnut,donut|🍪 cookie|🎂 birthday cake|🍰 shortcake,cake|🧁 cupcake|🍫 chocolate bar|🍬 candy|' +
    '🍭 lollipop|🍿 popcorn|☕ hot beverage,coffee tea|🍵 teacup without handle,tea|🧃 beverage box,juice|' +
    '🥤 cup with straw,soda|🧋 bubble tea|🍺 beer mug,beer|🍻 clinking beer mugs,cheers|🥂 clinking glasses,cheers toast|' +
    '🍷 wine glass,wine|🥃 tumbler glass,whisky|🍸 cocktail glass|🍾 bottle with popping cork,champagne celebrate|' +
    '🧊 ice|🥄 spoon|🍴 fork and knife'],
  ['activities', 'Activities and travel', '⚽',
    '⚽ soccer ball,football|🏀 basketball|🏈 american football|⚾ baseball|🎾 tennis|🏐 volleyball|🏓 ping pong|' +
    '🏸 badminton|🥅 goal net|⛳ flag in hole,golf|🎣 fishing pole|🏊 person swimming,swim|🚴 person biking,bike|' +
    '🏆 trophy,win champion|🥇 1st place medal,gold first|🥈 2nd place medal,silver|🥉 3rd place medal,bronze|' +
    '🏅 sports medal|🎯 direct hit,target bullseye|🎮 video game,gaming|🕹️ joystick|🎲 game die,dice|♟️ chess pawn|' +
    '🧩 puzzle piece|🎨 artist palette,art|🎬 clapper board,movie film|🎤 microphone,sing karaoke|🎧 headphone,music|' +
    '🎸 guitar|🎹 musical keyboard,piano|🥁 drum|🎺 trumpet|🎻 violin|🎵 musical note,music|🎶 musical notes|' +
    '🎉 party popper,tada celebrate congratulations|🎊 confetti ball|🎈 balloon|🎁 wrapped gift,present|' +
    '🎀 ribbon|🎃 jack-o-lantern,halloween|🎆 fireworks|🚗 automobile,car|🚕 taxi|🚌 bus|🚑 ambulance|' +
    '🚒 fire engine|🚲 bicycle|🛴 kick scooter|🚂 locomotive,train|🚆 train|✈️ airplane,plane travel|' +
    '🚀 rocket,launch ship fast|🛸 flying saucer,ufo|🚁 helicopter|⛵ sailboat|🚢 ship|⚓ anchor|🗺️ world map|' +
    '🏠 house,home|🏢 office building,work|🏰 castle|⛺ tent,camping|🏖️ beach with umbrella,vacation|' +
    '🏔️ snow-capped mountain|🗽 statue of liberty|🗼 tokyo tower|🎡 ferris wheel'],
  ['objects', 'Objects', '💡',
    '💡 light bulb,idea|🔦 flashlight|🕯️ candle|📱 mobile phone|💻 laptop,computer|🖥️ desktop computer|' +
    '⌨️ keyboard|🖱️ computer mouse|💾 floppy disk,save|💿 optical disk,cd|📷 camera,photo|🎥 movie camera|' +
    '📺 television,tv|📻 radio|⏰ alarm clock|⏳ hourglass not done,wait|⌛ hourglass done|📅 calendar,date|' +
    '📆 tear-off calendar|📌 pushpin,pin|📎 paperclip,attach|✂️ scissors,cut|🖊️ pen|✏️ pencil,edit|' +
    '📝 memo,note write|📁 file folder|📂 open file folder|📄 page facing up,document|📊 bar chart,stats|' +
    '📈 chart increasing,up growth|📉 chart decreasing,down|📋 clipboard|📚 books,read|📖 open book|' +
    '🔖 bookmark|🏷️ label,tag|💰 money bag|💵 dollar banknote,money|💳 credit card|🧾 receipt|' +
    '✉️ envelope,mail email|📧 e-mail|📨 incoming envelope|📦 package,box ship|📮 postbox|🔒 locked,lock secure|' +
    '🔓 unlocked|🔑 key|🔨 hammer|🪛 screwdriver|🔧 wrench,fix|⚙️ gear,settings|🧰 toolbox|🧲 magnet|' +
    '🔬 microscope,science|🔭 telescope|💊 pill|🩹 adhesive bandage|🧪 test tube,experiment|🛒 shopping cart|' +
    '🎫 ticket|🔔 bell,notification|🔕 bell with slash,mute|📣 megaphone,announce|📢 loudspeaker|🔍 magnifying glass,search|' +
    '🧹 broom,clean|🗑️ wastebasket,trash delete|🚪 door|🪑 chair|🛏️ bed|⏱️ stopwatch,timer|💎 gem stone,diamond|👑 crown,king queen'],
  ['symbols', 'Symbols', '❤️',
    '❤️ red heart,love|🧡 orange heart|💛 yellow heart|💚 green heart|💙 blue heart|💜 purple heart|🖤 black heart|' +
    '🤍 white heart|🤎 brown heart|💔 broken heart|❣️ heart exclamation|💕 two hearts|💖 sparkling heart|' +
    '💗 growing heart|💘 heart with arrow|💯 hundred points,100 perfect|💢 anger symbol|💥 collision,boom|' +
    '💫 dizzy|💦 sweat droplets|💨 dashing away,fast|💬 speech balloon,comment chat|💭 thought balloon|' +
    '💤 zzz,sleep|✅ check mark button,done yes|☑️ check box with check|✔️ check mark|❌ cross mark,no wrong|' +
    '❎ cross mark button|➕ plus|➖ minus|❓ red question mark,question|❔ white question mark|' +
    '❗ red exclamation mark,important|‼️ double exclamation mark|⚠️ warning,caution|🚫 prohibited,forbidden|' +
    '⛔ no entry|🛑 stop sign|♻️ recycling symbol|🔴 red circle|🟠 orange circle|🟡 yellow circle|' +
    '🟢 green circle|🔵 blue circle|🟣 purple circle|⚫ black circle|⚪ white circle|🟥 red square|' +
    '🟩 green square|🔺 red triangle pointed up|🔻 red triangle pointed down|➡️ right arrow|⬅️ left arrow|' +
    '⬆️ up arrow|⬇️ down arrow|🔄 counterclockwise arrows,refresh sync|🔁 repeat button|▶️ play button|' +
    '⏸️ pause button|⏹️ stop button|🆕 new button|🆗 ok button|🆒 cool button|🆘 sos button,help|' +
    '🔝 top arrow|💲 heavy dollar sign|©️ copyright|®️ registered|™️ trade mark|#️⃣ keycap number sign,hash|' +
    '🏁 chequered flag,finish|🚩 triangular flag,red flag|🏳️ white flag|🏴 black flag|🏳️‍🌈 rainbow flag,pride'],
];

// [{id, name, icon, emoji: [{char, name, words}]}]
export const CATEGORIES = RAW.map(([id, name, icon, list]) => ({
  id,
  name,
  icon,
  emoji: list.split('|').map((entry) => {
    const space = entry.indexOf(' ');
    const char = entry.slice(0, space);
    const [label, extra = ''] = entry.slice(space + 1).split(',');
    return { char, name: label, words: (label + ' ' + extra).toLowerCase() };
  }),
}));

export const ALL_EMOJI = CATEGORIES.flatMap((c) => c.emoji);

const byChar = new Map(ALL_EMOJI.map((e) => [e.char, e]));

// The entry of an emoji character (name for labels), or a bare one.
export function emojiInfo(char) {
  return byChar.get(char) || { char, name: char, words: '' };
}

// The emoji whose name or words match every word of `query`, the ones with a
// word starting with the query's first word before those only containing it.
export function searchEmoji(query) {
  const words = query.toLowerCase().trim().split(/\s+/).filter(Boolean);
  if (!words.length) return ALL_EMOJI;
  const hits = ALL_EMOJI.filter((e) => words.every((w) => e.words.includes(w)));
  const starts = (e) => (' ' + e.words).includes(' ' + words[0]) ? 0 : 1;
  return hits.map((e, i) => [starts(e), i, e]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
}

// Recently used emoji, newest first, kept in localStorage (no secret there).
const RECENT_KEY = 'parley.emoji.recent';
const RECENT_MAX = 16;

export function recentEmoji() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(list) ? list.filter((c) => typeof c === 'string').slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

export function noteEmojiUsed(char) {
  const list = [char, ...recentEmoji().filter((c) => c !== char)].slice(0, RECENT_MAX);
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    /* storage full or disabled: recents are a convenience */
  }
}
