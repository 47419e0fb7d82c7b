<?php
// DJJob handlers made by the real PHP serialize(), for qadmin's interop tests.
//
//   php djjob_handlers.php make          -> stdout: {"label": "<base64 of serialize($job)>", ...}
//   php djjob_handlers.php run LOG       <- stdin: {"label": "<base64 handler>", ...}
//        unserialize() each handler as DJJob's worker does; an object gets perform()ed (each job
//        appends "<label> <what it saw>" to LOG), anything else is reported as DJJob's "bad handler".
//        stdout: {"label": "performed" | "bad handler", ...}
//
// DJJob itself needs a MySQL PDO connection, which is not part of this test set-up; its worker's
// handling of a handler is `unserialize($handler)`, `is_object()`, `->perform()`, reproduced here.

namespace App\Jobs {
    class SendMail
    {
        public $to;
        protected $subject;
        private $body;

        public function __construct($to, $subject, $body)
        {
            $this->to = $to;
            $this->subject = $subject;
            $this->body = $body;
        }

        public function perform()
        {
            \side_effect("send_mail", "{$this->to} {$this->subject} {$this->body}");
        }
    }
}

namespace {
    $GLOBALS['LOG'] = null;

    function side_effect($label, $text)
    {
        file_put_contents($GLOBALS['LOG'], "$label $text\n", FILE_APPEND);
    }

    class HelloWorldJob
    {
        public $name;

        public function __construct($name)
        {
            $this->name = $name;
        }

        public function perform()
        {
            side_effect("hello", "Hello {$this->name}!");
        }
    }

    class MixedJob
    {
        public $pub = 1;
        protected $prot = "p";
        private $priv = 2.5;
        public $n = null;
        public $b = true;
        public $arr = ["a" => 1, 0 => "x", 5 => []];

        public function perform()
        {
            side_effect("mixed", "{$this->pub} {$this->prot} {$this->priv} " . json_encode($this->arr));
        }
    }

    class Parent1
    {
        private $secret = "p";

        protected function parentSecret()
        {
            return $this->secret;
        }
    }

    class Child1 extends Parent1
    {
        private $secret = "c";
        public $p = "日本語";

        public function perform()
        {
            side_effect("child", "{$this->secret} {$this->parentSecret()} {$this->p}");
        }
    }

    // a property holding bytes that are not UTF-8 (DJJob's README: use a BLOB for binary data)
    class BinaryJob
    {
        public $blob;

        public function __construct()
        {
            $this->blob = "\xff\xfe\x00\x81";
        }

        public function perform()
        {
            side_effect("binary", bin2hex($this->blob));
        }
    }

    function make()
    {
        $jobs = [
            "hello" => new HelloWorldJob("delayed_job"),
            "mixed" => new MixedJob(),
            "send_mail" => new App\Jobs\SendMail("zoë@example.com", "Grüße ✓", "héllo wörld"),
            "child" => new Child1(),
            "binary" => new BinaryJob(),
            "not_an_object" => "just a string",
        ];
        $out = [];
        foreach ($jobs as $label => $job) {
            $out[$label] = base64_encode(serialize($job));
        }
        return $out;
    }

    function run($handlers)
    {
        $out = [];
        foreach ($handlers as $label => $b64) {
            $job = @unserialize(base64_decode($b64));
            if (!is_object($job)) {
                $out[$label] = "bad handler";
                continue;
            }
            $job->perform();
            $out[$label] = "performed";
        }
        return $out;
    }

    $command = $argv[1] ?? "";
    if ($command === "make") {
        echo json_encode(make()), "\n";
    } elseif ($command === "run") {
        $GLOBALS['LOG'] = $argv[2];
        echo json_encode(run(json_decode(stream_get_contents(STDIN), true))), "\n";
    } else {
        fwrite(STDERR, "usage: php djjob_handlers.php make | run LOG\n");
        exit(2);
    }
}
